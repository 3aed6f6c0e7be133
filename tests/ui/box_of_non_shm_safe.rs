use shmsync::ShmBox;

fn main() {
    let _ = ShmBox::new(Vec::<u8>::new());
    let _ = ShmBox::new(&0u8);
    let _ = ShmBox::new(Box::new(0u8));
    let _ = ShmBox::<String>::open("/name");
}
