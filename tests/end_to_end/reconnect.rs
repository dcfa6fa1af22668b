//! Losing Discord after start-up: personae itself says so at every retry, with the back-off,
//! and says when it is back.

use std::time::Duration;

use personae_testkit::bot::{Bot, WAIT};

/// Waits until `count` log lines contain `what`, and returns them.
async fn log_lines(bot: &Bot, what: &str, count: usize, timeout: Duration) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let lines: Vec<String> = bot
            .logs()
            .lines()
            .filter(|l| l.contains(what))
            .map(str::to_owned)
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {count} log lines with {what:?}:\n{}",
            bot.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn while_the_gateway_cannot_be_reached_every_retry_logs_a_warn_with_the_back_off() {
    let bot = Bot::start().await;
    bot.discord.wait_gateway_connected(WAIT).await.unwrap();
    bot.discord.refuse_gateway(true);
    bot.discord.drop_gateway().await.unwrap();
    // Checked every 5 s, as serenity retries: three warnings within 20 s.
    let warnings = log_lines(
        &bot,
        "cannot reach Discord's gateway; trying again",
        3,
        Duration::from_secs(25),
    )
    .await;
    for (i, line) in warnings.iter().enumerate() {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains("retry_in_secs=5"), "{line}");
        assert!(line.contains(&format!("attempt={}", i + 1)), "{line}");
    }
    bot.discord.refuse_gateway(false);
    let back = log_lines(
        &bot,
        "connected to Discord again",
        1,
        Duration::from_secs(30),
    )
    .await;
    assert!(back[0].contains("INFO"), "{back:?}");
    bot.assert_valid_requests();
}
