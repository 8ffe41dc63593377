fn main() -> std::process::ExitCode {
    vodhook::cli::main()
}
