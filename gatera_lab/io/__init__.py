"""Durable files: atomic writes, content hashes, folder manifests, checkpoint files and run folders.

- `atomic_write`: a file or folder complete under its final name, or the old one still there;
- `durable_checkpoint_io`: Lightning checkpoints written so;
- `checkpoint_file`: reading a checkpoint file a user names, without letting it run code;
- `file_hashes`, `folder_manifest`: the pins of downloaded files and folders, and their checks;
- `run_folder`: where a run writes its files.

Nothing here knows about adapters, models or training: it imports only `gatera_lab.errors`.
"""
