//! The harness shared by personae's tests, benchmarks and load commands: the real
//! application on its own database in a temporary folder ([`spawn_app`]), the real bot
//! process against the fake Discord and fake LLM ([`bot`], [`users`]), an in-memory event
//! log ([`memory_log`]) and the plain alias map the cache is checked against
//! ([`plain_index`]); and the fixtures the benchmarks and the load commands measure with
//! ([`bus_fixture`], [`routing_fixture`], [`command_path`], [`seed`]).

pub mod bot;
pub mod bus_fixture;
pub mod command_path;
pub mod memory_log;
pub mod plain_index;
pub mod routing_fixture;
pub mod seed;
pub mod users;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use personae::app::App;
use personae::application::{Actor, Registration, RequestContext};
use personae::config::{Config, LogFormat};
use personae::domain::{Personality, ServerId, UserId};
use personae::store::{Database, Synchronous};
use tempfile::TempDir;

/// The application on a fresh database, and the folder that holds it.
pub struct TestApp {
    pub app: App,
    pub dir: TempDir,
    pub config: Config,
}

/// A config for a database in `dir`, with user 1 as bot admin.
pub fn test_config(dir: &TempDir) -> Config {
    Config {
        database_path: dir.path().join("personae.db"),
        database_synchronous: Synchronous::Normal,
        admin_ids: HashSet::from([admin()]),
        log_format: LogFormat::Pretty,
        handler_timeout: Duration::from_millis(500),
        allowed_models: Vec::new(),
        max_tokens: 1024,
    }
}

/// Starts the real application on a fresh database.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temporary folder");
    let config = test_config(&dir);
    let app = App::start(&config).await.expect("app starts");
    TestApp { app, dir, config }
}

impl TestApp {
    /// Starts the application again on the same database (a restart).
    pub async fn restart(self) -> TestApp {
        self.app.shutdown().await;
        let TestApp { app, dir, config } = self;
        drop(app);
        let app = App::start(&config).await.expect("app restarts");
        TestApp { app, dir, config }
    }

    pub fn db_path(&self) -> PathBuf {
        self.config.database_path.clone()
    }

    /// A second connection to the same file, for checks that bypass the application.
    pub fn raw(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.db_path()).expect("open raw connection")
    }

    /// Registers a personality of [`home`] by its owner `owner`, with the given aliases.
    pub async fn create(&self, name: &str, owner: UserId, aliases: &[&str]) -> Personality {
        self.create_by(&self.as_user(owner), name, owner, aliases)
            .await
    }

    /// Like [`TestApp::create`], by the host's command line: no per-member limit applies.
    pub async fn create_as_host(&self, name: &str, owner: UserId, aliases: &[&str]) -> Personality {
        self.create_by(&cli_ctx(), name, owner, aliases).await
    }

    async fn create_by(
        &self,
        ctx: &RequestContext,
        name: &str,
        owner: UserId,
        aliases: &[&str],
    ) -> Personality {
        self.app
            .service
            .register(
                ctx,
                Registration {
                    name: name.to_owned(),
                    owner_id: Some(owner),
                    prompt: Some(format!("You are {name}.")),
                    aliases: aliases.iter().map(|a| (*a).to_string()).collect(),
                    ..Default::default()
                },
            )
            .await
            .expect("registration succeeds")
    }

    /// A request context for a Discord member (without Manage Server) in [`home`].
    pub fn as_user(&self, user: UserId) -> RequestContext {
        RequestContext::new(self.app.service.actor_for(user, false)).in_server(Some(home()))
    }

    /// A snapshot of every table that holds state, to prove a refused command changed nothing.
    pub fn snapshot(&self) -> Vec<String> {
        let conn = self.raw();
        let mut out = Vec::new();
        for table in [
            "personalities",
            "personality_keys",
            "events",
            "conversation_messages",
            "active_conversations",
            "channel_activations",
        ] {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {table} ORDER BY 1"))
                .unwrap();
            let columns = stmt.column_count();
            let rows = stmt
                .query_map([], |r| {
                    let values = (0..columns)
                        .map(|i| {
                            r.get::<_, rusqlite::types::Value>(i)
                                .map(|v| format!(" {v:?}"))
                        })
                        .collect::<Result<String, _>>()?;
                    Ok(format!("{table}:{values}"))
                })
                .unwrap();
            out.extend(rows.map(Result::unwrap));
        }
        out
    }
}

pub fn alice() -> UserId {
    UserId::new(7001).unwrap()
}

pub fn bob() -> UserId {
    UserId::new(7002).unwrap()
}

/// The bot admin of [`test_config`].
pub fn admin() -> UserId {
    UserId::new(1).unwrap()
}

/// The command line, acting on [`home`]'s personalities.
pub fn cli_ctx() -> RequestContext {
    RequestContext::new(Actor::CommandLine).in_server(Some(home()))
}

/// A member (without Manage Server) acting in `server`.
pub fn as_member_of(app: &App, member: UserId, server: u64) -> RequestContext {
    RequestContext::new(app.service.actor_for(member, false)).in_server(ServerId::new(server).ok())
}

/// What a member of [`home`] can mention there.
pub fn reachable(cache: &personae::cache::ProfileCache) -> personae::routing::Reachable<'_> {
    personae::routing::Reachable {
        cache,
        server: Some(home()),
        author: alice().get(),
    }
}

/// The server the tests' members are in: the fake Discord's guild.
pub fn home() -> ServerId {
    ServerId::new(8001).unwrap()
}

/// Opens the database of a test app directly (for a second process's view).
pub fn open_db(path: &std::path::Path) -> Database {
    Database::open(path, Synchronous::Normal).expect("database opens")
}
