package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// peer is another library's flood client: a program in a directory of its
// own under -peerdir, run as a process of its own against the same server and
// flood as shardfleet's client. It prints a floodResult, its CPU time read
// from the kernel over the same span (from before it connects until the last
// event), and names the inflater it really used.
type peer struct {
	label string
	// argv runs the client in its directory; it gets --url (the flood's URL
	// without query), --compression (one of inflaters) and --events.
	argv []string
	// installed is what must exist in the directory, and install how to get it.
	installed, install string
	// inflaters are the peer's ways of decoding each transport compression
	// (a compression missing here is one the peer does not offer).
	inflaters map[string][]string
}

var peers = map[string]peer{
	"discordjs": {
		label:     "@discordjs/ws",
		argv:      []string{"node", "client.mjs"},
		installed: "node_modules",
		install:   "npm ci",
		inflaters: map[string][]string{"plain": {"none"}, "zlib-stream": {"zlib-sync", "node:zlib"}},
	},
}

// peerVariants returns the flood variants of the named peers for the
// compressions; it says on stdout which peer or compression it skips, and
// why.
func peerVariants(names, dir string, comps []string) ([]floodVariant, error) {
	var vs []floodVariant
	for name := range strings.SplitSeq(names, ",") {
		if name == "" {
			continue
		}
		p, ok := peers[name]
		if !ok {
			return nil, fmt.Errorf("-peers %q: unknown peer %q; valid: %s", names, name, strings.Join(slices.Sorted(maps.Keys(peers)), ", "))
		}
		if why := p.missing(filepath.Join(dir, name)); why != "" {
			fmt.Printf("peer %s skipped: %s\n", name, why)
			continue
		}
		for _, c := range comps {
			if len(p.inflaters[c]) == 0 {
				fmt.Printf("peer %s skipped for %s: %s does not offer it\n", name, c, p.label)
			}
			for _, inflater := range p.inflaters[c] {
				vs = append(vs, floodVariant{comp: c, peer: name, setting: inflater})
			}
		}
	}
	return vs, nil
}

// missing says why the peer in dir cannot run, or "" when it can.
func (p peer) missing(dir string) string {
	if _, err := exec.LookPath(p.argv[0]); err != nil {
		return fmt.Sprintf("%s not found on PATH", p.argv[0])
	}
	if _, err := os.Stat(filepath.Join(dir, p.installed)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Sprintf("%s is not installed (cd %s && %s; -peerdir names the directory holding %s)",
				filepath.Join(dir, p.installed), dir, p.install, filepath.Base(dir))
		}
		return err.Error()
	}
	return ""
}

// run runs the peer's client in dir once and decodes its result into r.
func (p peer) run(r *floodResult, dir, floodURL, inflater string, events int) error {
	args := append(slices.Clone(p.argv[1:]), "--url", floodURL, "--compression", inflater, "--events", strconv.Itoa(events))
	cmd := exec.Command(p.argv[0], args...)
	cmd.Dir = dir
	if err := decodeOutput(r, cmd); err != nil {
		return err
	}
	if r.Inflate != inflater || r.Reconnects != 0 {
		return fmt.Errorf("%s asked for %s: inflated with %q, %d connections lost mid-run", p.label, inflater, r.Inflate, r.Reconnects)
	}
	return nil
}
