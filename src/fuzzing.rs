//! Entry points for the cargo-fuzz targets in `fuzz/`. Each target is one line calling a function here,
//! so `cargo test` can replay the corpus through the same code. Not a stable API.
