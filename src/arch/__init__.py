"""The architecture a job trains, as data: ultralytics' base YAMLs (`bases`), positions by role
resolved in a base's graph (`positions`, once per job, by the config checks), the resolved whole
(`architecture`), the YAML rewrite that inserts the attention (`rewrite`) and the model-YAML keys
our ultralytics glue reads back (`keys`).

Nothing here imports torch or ultralytics: what needs a real build (each layer's channels and
bottlenecks) comes in as a layout from `src.ultralytics_glue.layout`, passed by the caller.
"""
