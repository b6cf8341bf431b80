//go:build !unix

package diskfile

import "os"

// Lock only creates the lock file where flock(2) is not available: the
// directory is not protected against a second process.
func Lock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
}
