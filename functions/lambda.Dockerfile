# One image for every headstart Lambda (api, ingest, job-complete, train, authorizer): the
# sources run by tsx, onnxruntime-node pruned to linux/x64 (CPU). Each function picks its
# handler with the image CMD, e.g. CMD ["lambda/api.handler"]. Build context: the repository
# root (see /.dockerignore).
#   docker build -f functions/lambda.Dockerfile .
ARG LAMBDA_IMAGE=public.ecr.aws/lambda/nodejs:22

FROM --platform=linux/amd64 ${LAMBDA_IMAGE}
WORKDIR ${LAMBDA_TASK_ROOT}
COPY package.json package-lock.json .npmrc ./
# Lambda has no GPU: the CPU binaries that ship inside onnxruntime-node are enough (the
# repository's .npmrc already skips the CUDA download). Other platforms' binaries and the
# CDK libraries (deploy-time only) are removed.
RUN npm ci --omit=dev --onnxruntime-node-install=skip \
 && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
      node_modules/onnxruntime-node/bin/napi-v6/linux/arm64 \
      node_modules/aws-cdk-lib node_modules/@aws-cdk node_modules/cdk-nag \
 && npm cache clean --force
COPY tsconfig.json ./
COPY shared ./shared
COPY functions ./functions
# The Node runtime loads .mjs/.js handlers only: one ESM shim per entry point registers tsx and
# re-exports the TypeScript module's handler (at init, so cold-start work is done once).
RUN mkdir lambda && for fn in api ingest job-complete train authorizer; do \
      printf '%s\n' \
        'import { register } from "tsx/esm/api";' \
        'register();' \
        "const mod = await import(\"../functions/${fn}/handler.ts\");" \
        'export const handler = mod.handler;' > "lambda/${fn}.mjs"; \
    done
ENV NODE_ENV=production
CMD ["lambda/api.handler"]
