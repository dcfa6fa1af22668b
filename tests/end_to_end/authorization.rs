//! The authorization matrix, end to end through the fake Discord: the owner, another member,
//! a manager of the home server (Manage Server), a bot admin, a member without the command's
//! permission and a manager of another server, against every command that changes
//! something. Allowed or refused as specified, with the state checked each time.

use personae_fakes::discord::CommandSpec;
use personae_testkit::bot::{create_step, Bot, BotOptions, ADMIN};
use personae_testkit::users::{answer, command, personality, text_option, MANAGER_PERMISSIONS};
use serde_json::{json, Value};

const OWNER: &str = "7001";
const OTHER: &str = "7002";
/// VIEW_CHANNEL only: no Send Messages, no Manage Messages.
const NO_PERMISSION_USER: &str = "7003";
const VIEW_ONLY: &str = "1024";
/// Has Manage Server in the home server.
const MANAGER: &str = "7004";
/// Has Manage Server in another server, and uses the commands there.
const OTHER_SERVER_MANAGER: &str = "7301";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Actor {
    Owner,
    Other,
    Admin,
    WithoutPermission,
    ServerManager,
    OtherServerManager,
}

const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Other,
    Actor::Admin,
    Actor::WithoutPermission,
    Actor::ServerManager,
    Actor::OtherServerManager,
];

fn as_actor(actor: Actor, mut spec: CommandSpec) -> CommandSpec {
    let (id, perms) = match actor {
        Actor::Owner => (OWNER, spec.permissions.clone()),
        Actor::Other => (OTHER, spec.permissions.clone()),
        Actor::Admin => (ADMIN, spec.permissions.clone()),
        Actor::WithoutPermission => (NO_PERMISSION_USER, VIEW_ONLY.to_owned()),
        Actor::ServerManager => (MANAGER, MANAGER_PERMISSIONS.to_owned()),
        Actor::OtherServerManager => {
            spec.guild_id = Some("8002".to_owned());
            "6101".clone_into(&mut spec.channel_id);
            (OTHER_SERVER_MANAGER, MANAGER_PERMISSIONS.to_owned())
        }
    };
    id.clone_into(&mut spec.user_id);
    spec.user_name = format!("user{id}");
    spec.permissions = perms;
    spec
}

/// A fresh bot where OWNER owns "Aria" (aliases bard, lyre) activated in channel 6001.
async fn fresh_bot() -> Bot {
    Bot::start_with(BotOptions {
        setup: vec![create_step(
            "Aria",
            &[
                "--alias",
                "bard",
                "--alias",
                "lyre",
                "--prompt",
                "You sing.",
            ],
        )],
        ..Default::default()
    })
    .await
}

/// Everything that describes Aria and the channel's activation.
fn state(bot: &Bot) -> Vec<String> {
    let conn = bot.db();
    let mut rows = Vec::new();
    for sql in [
        "SELECT name || '|' || display_name || '|' || prompt || '|' || COALESCE(model, '') || '|' || version FROM personalities ORDER BY name",
        "SELECT key FROM personality_keys ORDER BY key",
        "SELECT channel_id || '|' || personality_id FROM channel_activations",
    ] {
        let mut stmt = conn.prepare(sql).unwrap();
        rows.extend(stmt.query_map([], |r| r.get::<_, String>(0)).unwrap().map(Result::unwrap));
    }
    rows
}

fn is_refusal(response: &Value) -> bool {
    let content = response["data"]["content"].as_str().unwrap_or_default();
    response["type"] == 4
        && response["data"]["flags"].as_u64().unwrap_or(0) & 64 == 64
        && (content.contains("Only the owner")
            || content.contains("You need the")
            // From another server, the home server's personality doesn't exist.
            || content.starts_with("No personality is"))
}

struct Case {
    name: &'static str,
    spec: fn() -> CommandSpec,
    /// Who may do it.
    allowed: fn(Actor) -> bool,
}

/// Those who manage a personality: its owner, its server's managers, bot admins.
fn managers(actor: Actor) -> bool {
    matches!(actor, Actor::Owner | Actor::Admin | Actor::ServerManager)
}

fn with_permission(actor: Actor) -> bool {
    actor != Actor::WithoutPermission
}

/// Has the command's permission and acts in the home server.
fn with_permission_at_home(actor: Actor) -> bool {
    with_permission(actor) && actor != Actor::OtherServerManager
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "personality create",
            spec: || personality(OWNER, "create", vec![text_option("name", "Nova")]),
            allowed: with_permission,
        },
        Case {
            name: "personality update",
            spec: || {
                personality(
                    OWNER,
                    "update",
                    vec![
                        text_option("personality", "Aria"),
                        text_option("prompt", "Changed."),
                    ],
                )
            },
            allowed: managers,
        },
        Case {
            name: "personality alias",
            spec: || {
                personality(
                    OWNER,
                    "alias",
                    vec![
                        text_option("personality", "Aria"),
                        text_option("alias", "harp"),
                    ],
                )
            },
            allowed: managers,
        },
        Case {
            name: "personality unalias",
            spec: || {
                personality(
                    OWNER,
                    "unalias",
                    vec![
                        text_option("personality", "Aria"),
                        text_option("alias", "lyre"),
                    ],
                )
            },
            allowed: managers,
        },
        Case {
            name: "personality prompt",
            spec: || personality(OWNER, "prompt", vec![text_option("personality", "Aria")]),
            allowed: managers,
        },
        Case {
            name: "personality remove",
            spec: || personality(OWNER, "remove", vec![text_option("personality", "Aria")]),
            allowed: managers,
        },
        Case {
            name: "deactivate",
            spec: || command(OWNER, "deactivate", vec![]),
            allowed: with_permission_at_home,
        },
        Case {
            name: "activate",
            spec: || command(OWNER, "activate", vec![text_option("personality", "Aria")]),
            allowed: with_permission_at_home,
        },
    ]
}

#[tokio::test]
async fn every_changing_command_is_allowed_or_refused_as_specified() {
    // One bot per actor keeps each row independent of the others' changes.
    let mut handles = Vec::new();
    for actor in ACTORS {
        handles.push(tokio::spawn(async move {
            let bot = fresh_bot().await;
            // Activation exists so that deactivate has something to refuse or remove.
            let activated = answer(
                &bot,
                command(OWNER, "activate", vec![text_option("personality", "Aria")]),
            )
            .await;
            assert_eq!(activated["type"], 4, "{activated}");
            let mut outcomes = Vec::new();
            for case in cases() {
                let before = state(&bot);
                let spec = as_actor(actor, (case.spec)());
                let response = answer(&bot, spec).await;
                let after = state(&bot);
                let allowed = (case.allowed)(actor);
                if allowed {
                    assert!(
                        !is_refusal(&response),
                        "{actor:?} {}: refused: {response}",
                        case.name
                    );
                    let asks_first =
                        matches!(case.name, "personality prompt" | "personality remove");
                    if asks_first {
                        // A modal or a confirmation; nothing changes until the user answers.
                        assert!(
                            response["type"] == 9
                                || !response["data"]["components"]
                                    .as_array()
                                    .map_or(true, Vec::is_empty),
                            "{actor:?} {}: {response}",
                            case.name
                        );
                        assert_eq!(before, after, "{actor:?} {}", case.name);
                    } else {
                        assert_ne!(
                            before, after,
                            "{actor:?} {}: allowed but nothing changed: {response}",
                            case.name
                        );
                    }
                } else {
                    assert!(
                        is_refusal(&response),
                        "{actor:?} {}: not refused: {response}",
                        case.name
                    );
                    assert_eq!(
                        before, after,
                        "{actor:?} {}: a refusal changed state",
                        case.name
                    );
                }
                outcomes.push((case.name, allowed));
            }
            bot.assert_valid_requests();
            outcomes
        }));
    }
    for handle in handles {
        let outcomes = handle.await.expect("an actor's row passed");
        assert_eq!(outcomes.len(), 8);
    }
}

#[tokio::test]
async fn a_refused_member_gets_a_sentence_naming_what_is_missing() {
    let bot = fresh_bot().await;
    let response = answer(
        &bot,
        as_actor(
            Actor::Other,
            personality(OWNER, "remove", vec![text_option("personality", "bard")]),
        ),
    )
    .await;
    assert_eq!(
        response["data"]["content"],
        "Only the owner of \"Aria\", the managers of its server or a bot admin can change it."
    );
    let response = answer(
        &bot,
        as_actor(
            Actor::WithoutPermission,
            command(OWNER, "activate", vec![text_option("personality", "Aria")]),
        ),
    )
    .await;
    let text = response["data"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("You need the") && text.contains("Manage Messages"),
        "{text}"
    );
    assert_eq!(response["data"]["flags"], json!(64));
}
