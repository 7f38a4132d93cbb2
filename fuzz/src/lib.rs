//! The checks the fuzz targets run: `tests/input_checks/`, shared with the property tests, so
//! both assert the same properties (see that module's docs).

#[path = "../../tests/input_checks/mod.rs"]
pub mod input_checks;
