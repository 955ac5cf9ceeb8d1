package daemon

import (
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"ezio/engine/ezioapi"
)

// Dial connects to a daemon at host:port or unix:/path, with message
// limits large enough for the biggest torrents.
func Dial(addr string) (ezioapi.EZIOClient, *grpc.ClientConn, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	target := addr
	if !strings.HasPrefix(addr, "unix:") {
		target = "passthrough:///" + addr
	}
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageBytes), grpc.MaxCallSendMsgSize(MaxMessageBytes)))
	if err != nil {
		return nil, nil, err
	}
	return ezioapi.NewEZIOClient(cc), cc, nil
}
