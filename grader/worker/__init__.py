"""Code that runs inside a worker process, next to the student's code.

Nothing here imports the trusted side (catalogue, compare, scoring, reports) or the reference
solutions: what a worker can read, a submission can read. Only `grader.protocol` (encoding) and
`grader.inputs` (building arguments) are shared.
"""
