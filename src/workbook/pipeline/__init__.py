"""What runs a stage: the runner behind `python -m workbook run STAGE`, the params and their
checks, the paths, the contract with dvc.yaml, atomic writes, the kernel's set-up."""
