//! `ferraft demo`.

/// Runs the demo.
pub async fn run() -> Result<(), String> {
    Err("not yet".into())
}
