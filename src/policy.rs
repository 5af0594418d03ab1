//! Who may do what — the contract's permission rules, in one place. Handlers (API and admin)
//! ask these questions instead of checking roles themselves.

use crate::{
    error::{Error, NO_PERMISSION},
    store::{Store, ThreadMembers, User},
};

/// Said to either of two users when one blocks the other (the same words both ways, so the
/// blocked user is not told who blocked whom).
pub const CANNOT_MESSAGE: Error = Error::Forbidden("You cannot message this user.");

/// A thread is visible to its two participants and to staff; to anyone else it does not exist.
pub async fn visible_thread(store: &Store, user: &User, id: i64) -> Result<ThreadMembers, Error> {
    let members = store.thread_members(id).await?.ok_or(Error::NotFound)?;
    may_see(user, &members)?;
    Ok(members)
}

/// The visibility rule of [`visible_thread`], for a thread already read.
pub fn may_see(user: &User, members: &ThreadMembers) -> Result<(), Error> {
    if user.is_staff || members.includes(user.id) {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}

/// Only a thread's participants post in it (staff read any thread, but post only in their own).
pub fn may_post(user: &User, members: &ThreadMembers) -> Result<(), Error> {
    if members.includes(user.id) {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "Only the thread's participants may post in it.",
        ))
    }
}

/// Per-user resources (a user's thread list, unread count): that user or staff. Anyone else
/// gets 403 whether or not the user exists; staff learn that an unknown user is 404.
pub async fn user_scope(store: &Store, user: &User, target: i64) -> Result<(), Error> {
    if user.id == target {
        return Ok(());
    }
    if !user.is_staff {
        return Err(NO_PERMISSION);
    }
    match store.user(target).await? {
        Some(_) => Ok(()),
        None => Err(Error::NotFound),
    }
}

/// Managing users: staff only.
pub fn require_staff(user: &User) -> Result<(), Error> {
    if user.is_staff {
        Ok(())
    } else {
        Err(NO_PERMISSION)
    }
}

/// Granting or removing superuser status, and changing a superuser's account, are for
/// superusers only.
pub fn may_manage(actor: &User, target: &User, sets_superuser: bool) -> Result<(), Error> {
    require_staff(actor)?;
    if (sets_superuser || target.is_superuser) && !actor.is_superuser {
        return Err(Error::Forbidden(
            "Only a superuser may change superuser accounts or status.",
        ));
    }
    Ok(())
}

/// Creating a thread: a participant of it, or staff.
pub fn may_create_thread(user: &User, a: &User, b: &User) -> Result<(), Error> {
    if user.is_staff || user.id == a.id || user.id == b.id {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "You can only start threads you take part in.",
        ))
    }
}

/// Editing a message: its sender only (the other participant 403; anyone outside the thread,
/// staff included, 404).
pub fn may_edit(user: &User, members: &ThreadMembers, sender: i64) -> Result<(), Error> {
    if !members.includes(user.id) {
        Err(Error::NotFound)
    } else if user.id != sender {
        Err(Error::Forbidden("You can only edit your own messages."))
    } else {
        Ok(())
    }
}

/// Deleting a message: its sender, or staff (the other participant 403; anyone else outside
/// the thread 404).
pub fn may_delete(user: &User, members: &ThreadMembers, sender: i64) -> Result<(), Error> {
    if user.id == sender || user.is_staff {
        Ok(())
    } else if members.includes(user.id) {
        Err(Error::Forbidden("You can only delete your own messages."))
    } else {
        Err(Error::NotFound)
    }
}

/// Reacting: the thread's participants only (anyone else 404, staff included).
pub fn may_react(user: &User, members: &ThreadMembers) -> Result<(), Error> {
    if members.includes(user.id) {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
