//! `lanegate-client`: the client SDK.
#![forbid(unsafe_code)]
