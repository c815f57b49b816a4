fn main() -> std::process::ExitCode {
    match quiesce::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(code) => code,
    }
}
