"""The pipeline's stages, one module per dvc.yaml stage and named as it: each holds the stage's
steps and `run()`, their composition. Stages use the parts below them; nothing imports a stage."""
