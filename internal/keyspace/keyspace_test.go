package keyspace

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{
		"":              DefaultPrefix,
		"{shardfleet}:": "{shardfleet}:",
		"app":           "{app}:",
		"app:":          "{app}:", // as the workers' KEY_PREFIX and pkg/redislimiter both read it
		"app:{x}:":      "app:{x}:",
		"{app}:":        "{app}:",
		"x{tag}y:":      "x{tag}y:",
		"{}":            "{{}}:", // an empty tag hashes the whole key: wrap it
		"{open":         "{{open}:",
	} {
		if got := NormalizePrefix(in); got != want {
			t.Errorf("NormalizePrefix(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEveryKeyIsInTheSchema calls every Keys method and checks that the name
// it builds matches one pattern of Schema, so a key cannot be added without
// its documentation.
func TestEveryKeyIsInTheSchema(t *testing.T) {
	k, err := NewKeys("{p}:").WithPartitions(8)
	if err != nil {
		t.Fatal(err)
	}
	var patterns []*regexp.Regexp
	for _, d := range Schema {
		scope, rest, _ := strings.Cut(d.Pattern, " ")
		prefix := map[string]string{"P": `\{p\}:`, "S": `\{p/[0-9]+-[0-9]+\}:`}[scope]
		if prefix == "" {
			t.Fatalf("schema row %q: the pattern starts with neither P nor S", d.Pattern)
		}
		re := regexp.MustCompile(`<[a-z_]+>`).ReplaceAllString(regexp.QuoteMeta(rest), `[^:]+`)
		patterns = append(patterns, regexp.MustCompile(`^`+prefix+re+`$`))
	}
	v := reflect.ValueOf(k)
	for i := range v.NumMethod() {
		m, name := v.Method(i), v.Type().Method(i).Name
		if m.Type().NumOut() != 1 || m.Type().Out(0) != reflect.TypeFor[string]() {
			continue // not a key: Partitions, PartitionOf, WithPartitions
		}
		var args []reflect.Value
		for j := range m.Type().NumIn() {
			switch in := m.Type().In(j); in {
			case reflect.TypeFor[string]():
				args = append(args, reflect.ValueOf("w1"))
			case reflect.TypeFor[int]():
				args = append(args, reflect.ValueOf(3))
			case reflect.TypeFor[ShardKey]():
				args = append(args, reflect.ValueOf(ShardKey{ID: 1, Count: 4}))
			default:
				t.Fatalf("Keys.%s takes a %v: teach this test", name, in)
			}
		}
		key := m.Call(args)[0].String()
		if strings.HasSuffix(name, "Prefix") { // a prefix, not a key
			continue
		}
		found := false
		for _, re := range patterns {
			found = found || re.MatchString(key)
		}
		if !found {
			t.Errorf("Keys.%s builds %q, which no Schema pattern matches", name, key)
		}
	}
}

// TestSchemaDocIsCurrent: docs/keyspace.md holds SchemaMarkdown's table.
func TestSchemaDocIsCurrent(t *testing.T) {
	doc, err := os.ReadFile("../../docs/keyspace.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), SchemaMarkdown()) {
		t.Fatalf("docs/keyspace.md lacks the current schema table; replace its table with:\n%s", SchemaMarkdown())
	}
}

func TestParseSession(t *testing.T) {
	rec, err := ParseSession([]any{"S1", "42", "wss://r"})
	if err != nil || rec != (SessionRecord{SessionID: "S1", Sequence: 42, ResumeURL: "wss://r"}) {
		t.Fatalf("ParseSession = %+v, %v", rec, err)
	}
	if rec, err := ParseSession([]any{nil, nil, nil}); err != nil || rec != (SessionRecord{}) {
		t.Fatalf("an absent record = %+v, %v; want the zero record", rec, err)
	}
	for _, bad := range [][]any{{"S1", "x", ""}, {"S1", "-1", ""}, {"S1", "1"}} {
		if _, err := ParseSession(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseSession(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestShardKeyValidate(t *testing.T) {
	for _, k := range []ShardKey{{0, 0}, {-1, 2}, {2, 2}, {0, MaxShardCount + 1}} {
		if err := k.Validate(); !errors.Is(err, ErrInvalidShard) {
			t.Errorf("%v.Validate() = %v, want ErrInvalidShard", k, err)
		}
	}
	if err := (ShardKey{ID: 3, Count: 4}).Validate(); err != nil {
		t.Fatal(err)
	}
}
