"""One ablation job: config -> model YAML -> measured model -> trained run -> result.json.

`runner` orchestrates (skip, resume, record); `model_file` writes the job's model YAML;
`measurements` its cost figures; `training` the ultralytics run and what is read from it;
`baseline` shares the `none` baseline across positions; `preemption` turns SLURM's signals into
a clean stop; `provenance` records versions.
"""
