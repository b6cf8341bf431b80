//go:build !unix

package notify

import "os"

// lockDir only creates the lock file where flock(2) is not available: the
// directory is not protected against a second process.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
}
