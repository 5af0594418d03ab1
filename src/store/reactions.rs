//! Reactions: an emoji a participant puts on a message. Kept on the message row as the JSON the
//! message shows (`[{"emoji", "users"}]`, in the order first used): a message has at most two
//! reactors, so the list stays small and a page of messages needs no extra query. Adding and
//! removing are idempotent and announced as `message.updated` in both participants' logs.

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreResult,
    db::{Sql, Tx},
    events::{self, Payload},
    json_list::JsonList,
    messages::{self, Message},
    threads::{self, ThreadMembers},
    write,
};

/// Most different emoji on one message.
pub const MAX_REACTIONS: usize = 20;

/// One emoji on a message and who put it there.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Reaction {
    pub emoji: String,
    /// User ids, in the order they reacted.
    pub users: Vec<i64>,
}

/// A message's reactions, in the order first used.
pub type Reactions = JsonList<Reaction>;

impl JsonList<Reaction> {
    /// Adds `user`'s `emoji`; `Err` when it would be one emoji too many.
    fn add(&mut self, emoji: &str, user: i64) -> Result<bool, TooMany> {
        let used = self.0.len();
        match self.0.iter_mut().find(|r| r.emoji == emoji) {
            Some(reaction) if reaction.users.contains(&user) => Ok(false),
            Some(reaction) => {
                reaction.users.push(user);
                Ok(true)
            }
            None if used >= MAX_REACTIONS => Err(TooMany),
            None => {
                self.0.push(Reaction {
                    emoji: emoji.to_owned(),
                    users: vec![user],
                });
                Ok(true)
            }
        }
    }

    /// Removes `user`'s `emoji` (an emoji nobody uses any more leaves the list).
    fn remove(&mut self, emoji: &str, user: i64) -> bool {
        let Some(reaction) = self.0.iter_mut().find(|r| r.emoji == emoji) else {
            return false;
        };
        let before = reaction.users.len();
        reaction.users.retain(|u| *u != user);
        let changed = reaction.users.len() != before;
        self.0.retain(|r| !r.users.is_empty());
        changed
    }
}

/// The 21st different emoji.
#[derive(Debug)]
pub struct TooMany;

static SET: Sql = Sql::new("UPDATE messages SET reactions = $2 WHERE id = $1");

/// What a reaction request found.
#[derive(Debug)]
pub enum Reacted {
    /// The message as it is now (changed or not).
    Done(Message),
    NotFound,
    /// The requester is not one of the thread's participants.
    NotParticipant,
    TooMany,
}

async fn react(
    tx: &mut impl Tx,
    id: i64,
    user: i64,
    emoji: &str,
    on: bool,
) -> StoreResult<Reacted> {
    let Some(mut message) = messages::by_id(tx, id).await? else {
        return Ok(Reacted::NotFound);
    };
    // Locks the thread on PostgreSQL: reactions to one message never interleave.
    let members: ThreadMembers = tx
        .one(&threads::MEMBERS_FOR_UPDATE, &[&message.thread])
        .await?;
    if !members.includes(user) {
        return Ok(Reacted::NotParticipant);
    }
    let message_now = messages::by_id(tx, id).await?;
    if let Some(now) = message_now {
        message = now;
    }
    let changed = if on {
        match message.reactions.add(emoji, user) {
            Ok(changed) => changed,
            Err(TooMany) => return Ok(Reacted::TooMany),
        }
    } else {
        message.reactions.remove(emoji, user)
    };
    if changed {
        tx.execute(&SET, &[&id, &message.reactions.to_column()])
            .await?;
        let payload = Payload::MessageUpdated { message: &message };
        events::tell(tx, &members.users, payload).await?;
    }
    Ok(Reacted::Done(message))
}

impl Store {
    /// Puts (`on`) or takes back `user`'s `emoji` on a message; idempotent.
    pub async fn react(&self, id: i64, user: i64, emoji: &str, on: bool) -> StoreResult<Reacted> {
        let emoji = emoji.to_owned();
        write!(self, |tx| react(tx, id, user, &emoji, on).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_group_by_emoji_in_first_use_order() {
        let mut reactions = Reactions::default();
        assert!(reactions.add("👍🏽", 1).unwrap());
        assert!(reactions.add("👩‍💻", 2).unwrap());
        assert!(reactions.add("👍🏽", 2).unwrap());
        assert!(!reactions.add("👍🏽", 2).unwrap(), "twice changes nothing");
        assert_eq!(
            serde_json::to_value(&reactions).unwrap(),
            serde_json::json!([{"emoji": "👍🏽", "users": [1, 2]}, {"emoji": "👩‍💻", "users": [2]}])
        );
        assert!(reactions.remove("👩‍💻", 2));
        assert!(!reactions.remove("👩‍💻", 2));
        assert_eq!(reactions.0.len(), 1, "an emoji nobody uses leaves");
        let stored = reactions.to_column().unwrap();
        assert_eq!(Reactions::parse(&stored), reactions);
    }

    #[test]
    fn at_most_twenty_different_emoji() {
        let mut reactions = Reactions::default();
        for i in 0..MAX_REACTIONS {
            reactions.add(&format!("e{i}"), 1).unwrap();
        }
        assert!(reactions.add("one more", 1).is_err());
        assert!(
            reactions.add("e0", 2).unwrap(),
            "an emoji already there is fine"
        );
    }
}
