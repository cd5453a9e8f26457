"""One module per command, named after it (copy-task: copy_task); each has its entry
function, which `transformer_spec.cli` dispatches to."""
