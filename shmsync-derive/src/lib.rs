//! `#[derive(ShmSafe)]` for `shmsync`: checks the `repr` and every field of a struct and
//! computes its structural layout fingerprint; `#[derive(ShmZeroable)]` checks that every
//! field's all-zero bytes are a value.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Data, DeriveInput, Error, Fields, GenericArgument, Index, Member,
    PathArguments, Type,
};

/// Derives `shmsync::ShmSafe` for a `#[repr(C)]` or `#[repr(transparent)]` struct whose
/// fields are all `ShmSafe`.
///
/// Refused at the derive: enums and unions, lifetime parameters, and fields that hold a
/// reference or a raw pointer (anywhere in their type), besides a missing `repr` and
/// `repr(packed)`. Fields that are not `ShmSafe` and drop glue are compile errors too.
///
/// The fingerprint is built from each field's offset and fingerprint plus the struct's size
/// and alignment, never from names, so two programs that declare the same struct agree.
/// `BIT_PATTERNS` combines the fields', and `is_valid_bit_pattern` checks every field, so
/// placed bytes holding a forged `bool` or `char` field are refused.
///
/// # Examples
///
/// ```ignore
/// #[derive(shmsync::ShmSafe)]
/// #[repr(C)]
/// struct Counter { value: u64, updates: u32 }
/// ```
#[proc_macro_derive(ShmSafe)]
pub fn derive_shm_safe(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> Result<TokenStream2, Error> {
    let fields = struct_fields(
        input,
        "ShmSafe",
        "; write `unsafe impl ShmSafe` for an enum",
    )?;
    let mut errors = no_borrows(input, fields)
        .into_iter()
        .chain(check_repr(input).err());
    if let Some(mut first) = errors.next() {
        first.extend(errors);
        return Err(first);
    }
    let members: Vec<Member> = match fields {
        Fields::Named(named) => named
            .named
            .iter()
            .map(|f| Member::Named(f.ident.clone().expect("named field")))
            .collect(),
        Fields::Unnamed(unnamed) => (0..unnamed.unnamed.len())
            .map(|i| Member::Unnamed(Index::from(i)))
            .collect(),
        Fields::Unit => Vec::new(),
    };
    let types: Vec<_> = fields.iter().map(|f| &f.ty).collect();

    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    for ty in &types {
        where_clause
            .predicates
            .push(syn::parse_quote!(#ty: ::shmsync::ShmSafe));
    }
    let count = members.len() as u64;
    let fp = quote!(::shmsync::__private::fingerprint);
    let no_drop = no_drop_check(input);
    Ok(quote! {
        #no_drop
        // SAFETY: the derive checked that the struct is repr(C) or repr(transparent) and the
        // where clause requires every field to be ShmSafe; drop glue is refused by
        // `ASSERT_NO_DROP` wherever the type is placed in shared memory.
        unsafe impl #impl_generics ::shmsync::ShmSafe for #name #ty_generics #where_clause {
            const FINGERPRINT: u64 = {
                let mut hash = #fp::start(#fp::STRUCT);
                hash = #fp::mix(hash, #count);
                #(
                    hash = #fp::mix(hash, ::core::mem::offset_of!(Self, #members) as u64);
                    hash = #fp::mix(hash, <#types as ::shmsync::ShmSafe>::FINGERPRINT);
                )*
                #fp::finish(hash, ::core::mem::size_of::<Self>(), ::core::mem::align_of::<Self>())
            };
            const BACKENDS: u32 = 0 #(| <#types as ::shmsync::ShmSafe>::BACKENDS)*;
            const BIT_PATTERNS: ::shmsync::BitPatterns = ::shmsync::BitPatterns::Any
                #(.and(<#types as ::shmsync::ShmSafe>::BIT_PATTERNS))*;

            #[allow(unused_variables)]
            unsafe fn is_valid_bit_pattern(ptr: *const Self) -> bool {
                // SAFETY (each block): the field lies within the struct that the caller
                // vouches for; `addr_of!` makes no reference to its unchecked bytes.
                <Self as ::shmsync::ShmSafe>::BIT_PATTERNS != ::shmsync::BitPatterns::Unchecked
                    #(&& unsafe {
                        <#types as ::shmsync::ShmSafe>::is_valid_bit_pattern(
                            ::core::ptr::addr_of!((*ptr).#members),
                        )
                    })*
            }
        }
    })
}

/// Derives `shmsync::ShmZeroable` for a struct whose fields are all `ShmZeroable`, so that
/// `ShmBox::new_zeroed` and the other in-place constructors can make it in fresh shared
/// memory without building it first.
///
/// The struct must be `ShmSafe` too (usually derived alongside). Enums and unions are refused:
/// a zero discriminant may name no variant.
///
/// # Examples
///
/// ```ignore
/// #[derive(shmsync::ShmSafe, shmsync::ShmZeroable)]
/// #[repr(C)]
/// struct Frame { seq: u64, pixels: [u8; 1 << 20] }
/// ```
#[proc_macro_derive(ShmZeroable)]
pub fn derive_shm_zeroable(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand_zeroable(&input) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand_zeroable(input: &DeriveInput) -> Result<TokenStream2, Error> {
    let fields = struct_fields(
        input,
        "ShmZeroable",
        ": a zero discriminant may name no variant; write `unsafe impl ShmZeroable` for an \
         enum whose zero is a value",
    )?;
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let mut where_clause = where_clause
        .cloned()
        .unwrap_or_else(|| syn::parse_quote!(where));
    for field in fields {
        let ty = &field.ty;
        where_clause
            .predicates
            .push(syn::parse_quote_spanned!(ty.span()=> #ty: ::shmsync::ShmZeroable));
    }
    Ok(quote! {
        // SAFETY: the where clause requires every field to be ShmZeroable, so all-zero bytes
        // make each field, and so the struct, a valid, ready value.
        unsafe impl #impl_generics ::shmsync::ShmZeroable for #name #ty_generics #where_clause {}
    })
}

/// The fields of the struct `input`; an enum or a union is an error saying that `derive` works
/// on structs only (with `enum_hint` after it, for enums).
fn struct_fields<'a>(
    input: &'a DeriveInput,
    derive: &str,
    enum_hint: &str,
) -> Result<&'a Fields, Error> {
    let only = format!("{derive} can be derived for structs only");
    match &input.data {
        Data::Struct(data) => Ok(&data.fields),
        Data::Enum(data) => Err(Error::new(
            data.enum_token.span(),
            format!("{only}{enum_hint}"),
        )),
        Data::Union(data) => Err(Error::new(data.union_token.span(), only)),
    }
}

/// Errors for lifetime parameters and for references or pointers anywhere in a field's type:
/// shared memory holds plain data, and an address in one process means nothing in another.
fn no_borrows(input: &DeriveInput, fields: &Fields) -> Vec<Error> {
    let mut errors = Vec::new();
    for param in input.generics.lifetimes() {
        errors.push(Error::new_spanned(
            &param.lifetime,
            format!(
                "#[derive(ShmSafe)] does not support lifetime parameters such as `{}`: a value \
                 in shared memory cannot borrow anything",
                param.lifetime
            ),
        ));
    }
    for field in fields {
        find_addresses(&field.ty, &mut errors);
    }
    errors
}

/// Pushes an error for every reference or raw pointer inside `ty` (in arrays, tuples and
/// generic arguments too).
fn find_addresses(ty: &Type, errors: &mut Vec<Error>) {
    let found = |what: &str| {
        Error::new_spanned(
            ty,
            format!(
                "a ShmSafe struct cannot hold {what}: an address in one process means nothing \
                 in another (store an offset or an index into the shared value instead)"
            ),
        )
    };
    match ty {
        Type::Reference(_) => errors.push(found("references")),
        Type::Ptr(_) => errors.push(found("pointers")),
        Type::Array(array) => find_addresses(&array.elem, errors),
        Type::Slice(slice) => find_addresses(&slice.elem, errors),
        Type::Paren(paren) => find_addresses(&paren.elem, errors),
        Type::Group(group) => find_addresses(&group.elem, errors),
        Type::Tuple(tuple) => tuple.elems.iter().for_each(|t| find_addresses(t, errors)),
        Type::Path(path) => {
            for segment in &path.path.segments {
                if let PathArguments::AngleBracketed(args) = &segment.arguments {
                    for arg in &args.args {
                        if let GenericArgument::Type(t) = arg {
                            find_addresses(t, errors);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

fn check_repr(input: &DeriveInput) -> Result<(), Error> {
    let mut ok = false;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("repr")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("C") || meta.path.is_ident("transparent") {
                ok = true;
            } else if meta.path.is_ident("packed") {
                return Err(
                    meta.error("ShmSafe does not support repr(packed): fields would be unaligned")
                );
            }
            if meta.input.peek(syn::token::Paren) {
                // Skip the arguments of `align(N)` and the like; syn reports any token left
                // unparsed inside the parentheses as an error.
                let content;
                syn::parenthesized!(content in meta.input);
                content.parse::<TokenStream2>()?;
            }
            Ok(())
        })?;
    }
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            Span::call_site(),
            format!(
                "#[derive(ShmSafe)] requires #[repr(C)] or #[repr(transparent)] on `{}`: \
                 Rust's default layout may differ between programs",
                input.ident
            ),
        ))
    }
}

/// For a struct without generic parameters, a `const` that fails to compile when it has drop
/// glue; evaluated by `cargo check` too, unlike `ShmSafe::ASSERT_NO_DROP`, which fires only
/// where a generic constructor is instantiated (at `cargo build`).
fn no_drop_check(input: &DeriveInput) -> TokenStream2 {
    if !input.generics.params.is_empty() {
        return TokenStream2::new();
    }
    let name = &input.ident;
    let message = format!(
        "`{name}` derives ShmSafe but has drop glue (a Drop impl, or a field with one); \
         shared memory never runs destructors"
    );
    quote! {
        const _: () = ::core::assert!(!::core::mem::needs_drop::<#name>(), #message);
    }
}
