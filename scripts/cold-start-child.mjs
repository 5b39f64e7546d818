// One cold start, as Lambda's Node.js runtime does it: a fresh process imports the bundle, then
// (optionally) calls its handler once. Plain JavaScript on purpose: nothing may be compiled here.
// Prints one JSON line: epoch milliseconds when the handler was ready and when the first answer came.
const clock = () => performance.timeOrigin + performance.now();
const mod = await import(process.env.COLD_BUNDLE);
if (typeof mod.handler !== "function") throw new Error(`${process.env.COLD_BUNDLE} exports no handler`);
const ready = clock();
let answered;
let status;
if (process.env.COLD_EVENT) {
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${process.env.AWS_LAMBDA_FUNCTION_NAME}`,
    memoryLimitInMB: "2048",
    awsRequestId: "cold-start-bench",
    logGroupName: "bench",
    logStreamName: "bench",
    getRemainingTimeInMillis: () => 29_000,
  };
  const res = await mod.handler(JSON.parse(process.env.COLD_EVENT), context);
  answered = clock();
  status = res?.statusCode;
  if (status !== 200) throw new Error(`status ${status}: ${res?.body}`);
}
process.stdout.write(`\n${JSON.stringify({ ready, answered, status })}\n`);
