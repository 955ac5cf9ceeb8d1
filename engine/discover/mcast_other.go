//go:build !linux

package discover

// hearOwnInterfaceOnly is Linux's concern (see mcast_linux.go).
func hearOwnInterfaceOnly() {}
