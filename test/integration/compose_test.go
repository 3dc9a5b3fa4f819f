package integration

import (
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestComposeFile parses docker-compose.yml (TestComposeFleet runs it) and
// checks what the README promises: redis, 3 worker replicas per profile, a
// sim profile with fakediscord that needs no token, one build of the one
// image per profile, a healthcheck and a published port on every service a
// person looks at, and Redis's data in a named volume.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Build       any               `yaml:"build"`
			Profiles    []string          `yaml:"profiles"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
			Deploy struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("docker-compose.yml does not parse: %v", err)
	}
	redis, ok := doc.Services["redis"]
	if !ok || len(redis.Profiles) != 0 {
		t.Fatalf("want a redis service in every profile: %+v", redis)
	}
	for name, profile := range map[string]string{"worker": "discord", "worker-sim": "sim"} {
		w, ok := doc.Services[name]
		if !ok {
			t.Fatalf("no %s service", name)
		}
		if w.Deploy.Replicas != 3 || len(w.Profiles) != 1 || w.Profiles[0] != profile {
			t.Errorf("%s: replicas %d, profiles %v, build %v", name, w.Deploy.Replicas, w.Profiles, w.Build)
		}
		if w.Environment["REDIS_URL"] != "redis://redis:6379" {
			t.Errorf("%s: REDIS_URL = %q", name, w.Environment["REDIS_URL"])
		}
	}
	if _, ok := doc.Volumes["redis-data"]; !ok || !slices.Contains(redis.Volumes, "redis-data:/data") {
		t.Errorf("redis keeps its appendonly file outside a named volume: %v", redis.Volumes)
	}
	for _, profile := range []string{"discord", "sim"} {
		builds := 0
		for name, s := range doc.Services {
			if len(s.Profiles) != 0 && !slices.Contains(s.Profiles, profile) {
				continue
			}
			if s.Build != nil {
				builds++
			}
			if len(s.Healthcheck.Test) == 0 || s.Healthcheck.Test[0] != "CMD" {
				t.Errorf("%s: healthcheck %v, want one in exec (CMD) form: the image has no shell", name, s.Healthcheck.Test)
			}
			if name != "redis" && len(s.Ports) == 0 {
				t.Errorf("%s publishes no port", name)
			}
		}
		if builds != 1 {
			t.Errorf("profile %s builds shardfleet:local %d times, want once", profile, builds)
		}
	}
	sim := doc.Services["worker-sim"].Environment
	fake := doc.Services["fakediscord"]
	if len(fake.Profiles) != 1 || fake.Profiles[0] != "sim" || !strings.Contains(strings.Join(fake.Entrypoint, " "), "fakediscord") {
		t.Errorf("fakediscord: %+v", fake)
	}
	tokenArg := ""
	for i, a := range fake.Command {
		if a == "-token" && i+1 < len(fake.Command) {
			tokenArg = fake.Command[i+1]
		}
	}
	if sim["DISCORD_TOKEN"] == "" || sim["DISCORD_TOKEN"] != tokenArg {
		t.Errorf("worker-sim's token %q is not the fake's %q", sim["DISCORD_TOKEN"], tokenArg)
	}
	if !strings.HasPrefix(sim["DISCORD_API_URL"], "http://fakediscord:") {
		t.Errorf("worker-sim's DISCORD_API_URL = %q, want the fake", sim["DISCORD_API_URL"])
	}
	if real := doc.Services["worker"].Environment["DISCORD_TOKEN"]; !strings.HasPrefix(real, "${DISCORD_TOKEN") {
		t.Errorf("worker's DISCORD_TOKEN = %q, want it from the environment", real)
	}
	// Compose interpolates every service before it filters by profile, so a
	// required variable (${X:?...}) of the discord profile would make
	// `docker compose --profile sim up` fail without a token. The worker
	// itself reports a missing DISCORD_TOKEN.
	if strings.Contains(string(raw), ":?") {
		t.Errorf("docker-compose.yml uses a required variable (${X:?}); it breaks the sim profile")
	}
}

// TestDockerfile checks the build promises: multi-stage, static, non-root,
// both binaries.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	for _, want := range []string{"AS build", "CGO_ENABLED=0", "./cmd/worker", "./cmd/fakediscord", "USER nonroot", "ENTRYPOINT"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// A syntax line makes BuildKit pull its frontend image, which fails
	// offline even when every base image is local.
	if strings.HasPrefix(df, "# syntax=") {
		t.Error("Dockerfile starts with a # syntax= line")
	}
	if strings.Count(df, "\nFROM ") < 1 || strings.Count(df, "FROM ") < 2 {
		t.Error("Dockerfile is not multi-stage")
	}
}
