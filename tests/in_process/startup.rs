//! Start-up: the profile cache loaded from the database holds exactly what the repository
//! lists, however many batches the load hands from the database thread to the indexer.

use personae::app::App;
use personae::application::Listing;
use personae::cache::ProfileInfo;
use personae_testkit::{alice, bob, home, seed, spawn_app};

#[tokio::test]
async fn the_loaded_cache_holds_every_stored_personality_with_its_name_and_aliases() {
    let t = spawn_app().await;
    t.create("Aria", alice(), &["bard", "the singer"]).await;
    t.create("Bran", bob(), &[]).await;
    // Two full batches of the load and a partial one.
    seed::personalities(&t.app.db, 600, 3, 40).await.unwrap();
    let ten: Vec<String> = (0..10).map(|i| format!("cora {i}")).collect();
    let ten: Vec<&str> = ten.iter().map(String::as_str).collect();
    t.create("Cora", alice(), &ten).await;
    t.app.shutdown().await;

    let restarted = App::start(&t.config).await.unwrap();
    let stored = restarted.service.list(Listing::default()).await.unwrap();
    assert_eq!(stored.len(), 603);
    assert_eq!(restarted.cache.len(), stored.len());
    for p in &stored {
        assert_eq!(
            restarted.cache.get(p.id()).as_deref(),
            Some(&ProfileInfo::of(p)),
            "{}",
            p.name()
        );
    }
    let keys: usize = stored.iter().map(|p| 1 + p.aliases().len()).sum();
    assert_eq!(restarted.cache.key_count(), keys);
    let found = |reference: &str| {
        restarted
            .cache
            .find(Some(home()), reference)
            .map(|info| info.name.to_string())
    };
    assert_eq!(found("the singer").as_deref(), Some("Aria"));
    assert_eq!(found("cora 9").as_deref(), Some("Cora"));
    assert_eq!(found("s599a2").as_deref(), Some("seed 599"));
    assert_eq!(found("seed 0").as_deref(), Some("seed 0"));
}
