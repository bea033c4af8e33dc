// The migrations are compiled in: a new or changed file must rebuild the console.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
