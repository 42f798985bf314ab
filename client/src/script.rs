//! The .NET sample's scripted run, step by step, with its console text.

use std::io::Write;

use todo_proto::v1::ToDo;

use crate::{Daemon, DaemonError};

/// Posts two to-dos, deletes the first, edits the second, deletes it, and
/// lists the server's to-dos after each step, writing the sample's
/// transcript to `out`.
pub async fn scripted_run(daemon: &Daemon, out: &mut impl Write) -> Result<(), DaemonError> {
    say(out, "Posting a to-do...");
    let first = daemon.add("Bake bread").await?;
    show(daemon, out).await?;

    say(out, "Posting a second to-do...");
    let second = daemon.add("Butter bread").await?;
    show(daemon, out).await?;

    say(out, "Deleting a to-do...");
    daemon.delete(first.id).await?;
    show(daemon, out).await?;

    say(out, "Editing a to-do...");
    daemon.update(second.id, "Eat bread").await?;
    show(daemon, out).await?;

    say(out, "Deleting remaining to-do...");
    daemon.delete(second.id).await?;
    show(daemon, out).await?;
    Ok(())
}

/// Lists the server's to-dos the way the sample prints them.
pub async fn show(daemon: &Daemon, out: &mut impl Write) -> Result<(), DaemonError> {
    say(out, "Retrieving to-do's from server...");
    let todos = daemon.list().await?;
    print_todos(&todos, out);
    Ok(())
}

/// Prints to-dos as the sample does, or that there are none.
pub fn print_todos(todos: &[ToDo], out: &mut impl Write) {
    if todos.is_empty() {
        say(out, "There are no to-do's in server");
        return;
    }
    say(out, "To-do data:");
    for todo in todos {
        print_todo(todo, out);
    }
}

/// Prints one to-do as the sample does.
pub fn print_todo(todo: &ToDo, out: &mut impl Write) {
    say(out, &format!("ID: {}", todo.id));
    say(out, &format!("User ID: {}", todo.owner));
    say(out, &format!("Message: {}", todo.description));
}

fn say(out: &mut impl Write, line: &str) {
    // A closed stdout (e.g. `| head`) must not abort the run.
    let _ = writeln!(out, "{line}");
}
