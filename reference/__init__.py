"""The course setting and reference solutions for ARENA [1.5.1] Balanced Bracket Classifier.

`reference.brackets` and `reference.model` are the course setting students use (tokenizer,
dataset, model); `reference.solutions` holds the reference answers, which the grader's worker
processes never import.
"""
