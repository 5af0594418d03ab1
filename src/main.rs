//! The `simple-chat` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    simple_chat::cli::main()
}
