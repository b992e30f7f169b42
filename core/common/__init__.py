"""What every other package leans on: where user data lives (paths), atomic writes and full disks (disk),
one writer per folder (folder_lock), numbers as people read them (formatting), devices and CPU threads
(devices), and lazy imports (lazy). Imports no other package of core."""
