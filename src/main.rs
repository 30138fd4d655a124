use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = test_executor::Config::parse();
    test_executor::telemetry::init_as(config.log_format);
    test_executor::serve(config).await
}
