// A gatewaybench flood client (cmd/gatewaybench) built on @discordjs/ws: one
// shard through WebSocketManager, everything as the library does by default
// (the ws package, JSON.parse of every payload, the default session store and
// identify throttler) except the compression named and the gateway
// information, which comes from the stand-in server's URL instead of REST.
// It counts MESSAGE_CREATE dispatches until -events have arrived and prints
// one JSON line in gatewaybench's floodResult form: CPU time is the process's
// (process.cpuUsage is getrusage(RUSAGE_SELF), all threads, zlib's included)
// from before connect until the last event, as for gatewaybench's own client.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { parseArgs } from 'node:util';
import { CompressionMethod, WebSocketManager } from '@discordjs/ws';

const { values: flags } = parseArgs({
	options: {
		url: { type: 'string' },
		compression: { type: 'string', default: 'none' },
		events: { type: 'string', default: '200000' },
	},
});

// The inflaters @discordjs/ws 2.x offers for zlib-stream, and none.
const methods = {
	none: null,
	'zlib-sync': CompressionMethod.ZlibSync,
	'node:zlib': CompressionMethod.ZlibNative,
};
if (!(flags.compression in methods)) {
	fail(`--compression ${flags.compression}: want ${Object.keys(methods).join(', ')}`);
}
const want = Number(flags.events);
if (!flags.url || !(want > 0)) {
	fail('--url (the stand-in server\'s gateway URL, without query) and --events > 0 are required');
}

// What GET /gateway/bot would return: one shard, no identify wait.
const gatewayBot = {
	url: flags.url,
	shards: 1,
	session_start_limit: { total: 1000, remaining: 1000, reset_after: 3_600_000, max_concurrency: 1 },
};
const rest = {
	async get(route) {
		if (route !== '/gateway/bot') {
			throw new Error(`unexpected REST request ${route}`);
		}
		return gatewayBot;
	},
};

const manager = new WebSocketManager({
	token: 'bench-token',
	intents: 0,
	rest,
	shardCount: 1,
	compression: methods[flags.compression],
});

const res = { events: 0, out_of_order: 0, reconnects: 0 };
// Every connection the shard loses is a "closed" event; the stand-in serves no
// RESUME, so a run that reconnected would not finish, but count it anyway.
manager.on('closed', () => res.reconnects++);
manager.on('dispatch', (payload) => {
	if (payload.t !== 'MESSAGE_CREATE') {
		return;
	}
	res.events++;
	if (payload.s !== res.events + 1 || typeof payload.d !== 'object') {
		res.out_of_order++;
	}
	if (res.events === want) {
		finish();
	}
});

const timeout = setTimeout(() => fail(`${res.events} of ${want} events after 5 minutes`), 5 * 60_000);
const cpu0 = process.cpuUsage();
const wall0 = process.hrtime.bigint();
manager.connect().catch((error) => fail(`connect: ${error}`));

function finish() {
	const cpu = process.cpuUsage(cpu0);
	res.wall_ns = Number(process.hrtime.bigint() - wall0);
	res.user_ns = cpu.user * 1000;
	res.sys_ns = cpu.system * 1000;
	clearTimeout(timeout);
	res.inflate = inflater();
	res.peer = versions();
	process.stdout.write(`${JSON.stringify(res)}\n`, () => process.exit(0));
}

// inflater names the decompressor the shard really holds (not the one asked
// for: @discordjs/ws falls back to none, with a warning, when it is missing).
function inflater() {
	const shard = manager.strategy.shards.get(0);
	if (shard.zLibSyncInflate) {
		return 'zlib-sync';
	}
	return shard.nativeInflate ? 'node:zlib' : 'none';
}

function versions() {
	const version = (pkg) =>
		JSON.parse(readFileSync(new URL(`node_modules/${pkg}/package.json`, import.meta.url))).version;
	const zlibSync = flags.compression === 'zlib-sync' ? `, zlib-sync ${version('zlib-sync')}` : '';
	return `@discordjs/ws ${version('@discordjs/ws')} (ws ${version('ws')}${zlibSync}), node ${process.version}`;
}

function fail(message) {
	process.stderr.write(`discordjs client: ${message}\n`);
	process.exit(1);
}
