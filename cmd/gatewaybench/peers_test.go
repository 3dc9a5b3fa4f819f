package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A peer runs right after shardfleet's client of the same compression, so
// that the runs compared are close in time.
func TestInterleavePutsPeersAfterTheirCompression(t *testing.T) {
	ours := floodVariants("plain,zlib-stream", "default,1")
	theirs := []floodVariant{
		{comp: "plain", peer: "discordjs", setting: "none"},
		{comp: "zlib-stream", peer: "discordjs", setting: "zlib-sync"},
		{comp: "zlib-stream", peer: "discordjs", setting: "node:zlib"},
	}
	var got []string
	for _, v := range interleave(ours, theirs) {
		got = append(got, v.String())
	}
	want := []string{
		"plain, shardfleet, GOMAXPROCS default", "plain, shardfleet, GOMAXPROCS 1", "plain, @discordjs/ws, none",
		"zlib-stream, shardfleet, GOMAXPROCS default", "zlib-stream, shardfleet, GOMAXPROCS 1",
		"zlib-stream, @discordjs/ws, zlib-sync", "zlib-stream, @discordjs/ws, node:zlib",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("interleave:\ngot  %q\nwant %q", got, want)
	}
}

// flood skips a peer that is not installed rather than failing, runs one
// that is with every inflater it offers, and refuses a name it does not know.
// No node is needed: a stand-in executable takes its place on PATH.
func TestPeerVariants(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "node"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	comps := []string{"plain", "zlib-stream", "zstd-stream"}
	dir := t.TempDir()
	vs, err := peerVariants("discordjs", dir, comps)
	if err != nil || len(vs) != 0 {
		t.Fatalf("not installed: %v, %v; want it skipped", vs, err)
	}
	if why := peers["discordjs"].missing(filepath.Join(dir, "discordjs")); !strings.Contains(why, "npm ci") {
		t.Errorf("not installed: %q does not say how to install it", why)
	}
	if err := os.MkdirAll(filepath.Join(dir, "discordjs", "node_modules"), 0o755); err != nil {
		t.Fatal(err)
	}
	vs, err = peerVariants("discordjs", dir, comps)
	if err != nil {
		t.Fatal(err)
	}
	want := []floodVariant{
		{comp: "plain", peer: "discordjs", setting: "none"},
		{comp: "zlib-stream", peer: "discordjs", setting: "zlib-sync"},
		{comp: "zlib-stream", peer: "discordjs", setting: "node:zlib"},
	}
	if !slices.Equal(vs, want) {
		t.Errorf("installed: got %v, want %v", vs, want)
	}
	if _, err := peerVariants("discordjs,nope", dir, comps); err == nil || !strings.Contains(err.Error(), "valid: discordjs") {
		t.Errorf("unknown peer: %v, want an error naming the valid peers", err)
	}
}
