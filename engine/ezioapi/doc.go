// Package ezioapi holds the Go code generated from ezio.proto, the gRPC
// control API that ezio's daemon shares with EZIO, plus ezio's own
// extension calls (RemoveTorrent, GetDiagnostics) added after EZIO's; none
// of EZIO's messages, fields or calls may change.
//
// The generated files are committed so that building ezio never needs
// protoc. After editing the .proto, regenerate them with the versions
// named in their headers (the output is then byte-identical for an
// unchanged .proto):
//
//	apt-get install protobuf-compiler    # protoc 3.21.12 (Debian 12)
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
//	PATH=$HOME/go/bin:$PATH go generate ./engine/ezioapi
//
// Without Debian's protoc, the one in python3-grpc-tools works too
// (`python3 -m grpc_tools.protoc`, with --plugin=protoc-gen-go=... and
// --plugin=protoc-gen-go-grpc=... naming the two plugins); only the
// protoc version in the headers differs.
package ezioapi

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative ezio.proto
