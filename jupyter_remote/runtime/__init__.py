"""Code that runs on the remote side (SageMaker container, Lambda, local sandbox).

Modules here import only the standard library and cloudpickle: they are shipped inside the job
bundle, so the remote image never needs jupyter-remote installed.
"""
