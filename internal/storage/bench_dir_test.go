package storage_test

import "os"

// tempDir outlives one benchmark run (b.TempDir would not), so the 10k-file store is
// built once however many times the benchmark function is called; the OS cleans /tmp.
func tempDir() (string, error) { return os.MkdirTemp("", "aios-storage-bench-") }
