// Package ezioapi holds the Go code generated from ezio.proto, the gRPC
// control API that ezio's daemon shares with EZIO. The generated files are
// committed so that building ezio never needs protoc; after editing the
// .proto, run `go generate ./engine/ezioapi` with protoc,
// protoc-gen-go and protoc-gen-go-grpc on PATH.
package ezioapi

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ezio.proto
