use shmsync::ShmMutex;

fn main() {
    let _ = ShmMutex::new(Vec::<u8>::new());
    let _ = ShmMutex::new(&0u8);
    let _ = ShmMutex::new(Box::new(0u8));
    let _ = ShmMutex::new(String::new());
}
