use std::process::ExitCode;

#[actix_web::main]
async fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let outcome = match roost::cli::parse_args() {
        Ok(cli) => roost::cli::run(cli).await,
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
