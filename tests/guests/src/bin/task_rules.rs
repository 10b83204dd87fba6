//! A task-only policy (it exports `task-policy` and nothing else), whose answer the exception's
//! message picks, so one component covers the task interface's sound and hostile answers
//! (cli/tests/all/tasks.rs):
//! - `trap`: panics; `nan-delay`: a retry after NaN seconds; `fail-with-delay`: a failure with
//!   a delay; `many-events`: 1,001 events; `decade`: a retry after ten years;
//! - a `builtins.PermissionError` (or a subclass) fails at once; anything else retries after 7 s.

use runretry_kit::{TaskCase, TaskDecision, TaskPolicy};

struct Rules;

impl TaskPolicy for Rules {
    fn decide_task(task: &TaskCase) -> TaskDecision {
        match task.exception.message.as_str() {
            "trap" => panic!("task policy trapped on purpose for {}", task.task_id),
            "nan-delay" => TaskDecision::retry(Some(f64::NAN), "wait NaN"),
            "fail-with-delay" => TaskDecision { delay_seconds: Some(5.0), ..TaskDecision::fail("fail, later") },
            "many-events" => TaskDecision { events: vec!["e".into(); 1_001], ..TaskDecision::retry(None, "chatty") },
            "decade" => TaskDecision::retry(Some(10.0 * 365.0 * 86_400.0), "wait a decade"),
            _ if task.exception.is_a("builtins.PermissionError") => {
                TaskDecision::fail(format!("{} is permanent", task.exception.class_name))
            }
            _ => TaskDecision::retry(Some(7.0), format!("try {} of {}: retry in 7 s", task.try_number, task.task_id)),
        }
    }
}

runretry_kit::export_policy!(task: Rules);

fn main() {}
