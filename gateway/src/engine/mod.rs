pub mod admit;
