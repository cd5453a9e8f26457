"""Outputs of runs: a cell's reports (`report`: text, JSON, JUnit, Markdown), the HTML page
(`pages`) and counterexample pictures (`pictures`), the conformance table and the merge of
sharded reports (`table`: `transformer-spec table` and `merge`), and the kill matrix
(`kill_matrix`: `transformer-spec mutants`)."""
