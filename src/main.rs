use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    let outcome = match roost::cli::parse_args() {
        Ok(cli) => {
            let _log_writer = roost::logging::init(cli.config.log_format);
            roost::cli::run(cli).await
        }
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", roost::error_chain::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
