// A stand-in worker for test/cli/launch.test.ts: prints torchrun's variables
// (one line written in two parts), then behaves as argv[3] says for its rank:
//   ok          exit 0
//   fail1       rank 1 exits 7 after 200 ms; the others wait to be stopped
//   stubborn    like fail1, but rank 0 ignores SIGTERM (the launcher must SIGKILL it)
const [, , , mode = "ok"] = process.argv;
const rank = Number(process.env.RANK);
process.stdout.write(`vars ${["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "MASTER_ADDR"].map((k) => `${k}=${process.env[k]}`).join(" ")}`);
setTimeout(() => process.stdout.write(` port=${Number(process.env.MASTER_PORT) > 0}\n`), 20);
process.stderr.write(`to stderr from ${rank}\n`);
if (mode === "ok") {
  setTimeout(() => process.exit(0), 50);
} else {
  process.on("SIGTERM", () => {
    if (mode === "stubborn" && rank === 0) {
      process.stdout.write("ignoring SIGTERM\n");
      return;
    }
    process.stdout.write("got SIGTERM\n");
    process.exit(143);
  });
  if (rank === 1) setTimeout(() => process.exit(7), 200);
  else setInterval(() => {}, 1000);
}
