"""What every other package leans on: where user data lives (paths), the one atomic write and full or
read-only disks (disk), opening files of shared folders as untrusted input (safe_files), one writer per
folder (folder_lock), numbers as people read them (formatting), devices and CPU threads
(devices), and lazy imports (lazy). Imports no other package of core."""
