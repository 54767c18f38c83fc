// An independent gRPC peer: @grpc/grpc-js with the .proto files loaded at run time, no generated code.
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { fileURLToPath } from "node:url";

const protoDir = fileURLToPath(new URL("../../proto", import.meta.url));

/** Loads veil.v1 from the .proto files as any other language would. */
export function loadVeilProtos() {
  const definition = protoLoader.loadSync(
    ["veil/v1/secret.proto", "veil/v1/token.proto", "veil/v1/conversation.proto", "veil/v1/settings.proto", "veil/v1/audit.proto", "veil/v1/keys.proto", "grpc/health/v1/health.proto"],
    { includeDirs: [protoDir], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true },
  );
  return grpc.loadPackageDefinition(definition) as unknown as {
    veil: { v1: Record<string, grpc.ServiceClientConstructor> };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
}

/** A grpc-js client of one veil.v1 service, with promise-returning unary calls. */
export function grpcJsClient(port: number, service: string, token?: string) {
  const protos = loadVeilProtos();
  const Ctor = service === "Health" ? protos.grpc.health.v1.Health : protos.veil.v1[service]!;
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const metadata = () => {
    const md = new grpc.Metadata();
    if (token !== undefined) md.set("authorization", `Bearer ${token}`);
    return md;
  };
  return {
    raw: client,
    metadata,
    unary<T = Record<string, unknown>>(method: string, request: unknown): Promise<T> {
      return new Promise((resolve, reject) => {
        (client as unknown as Record<string, (...a: unknown[]) => void>)[method]!.call(client, request, metadata(), (error: grpc.ServiceError | null, response: T) =>
          error ? reject(error) : resolve(response),
        );
      });
    },
    close: () => client.close(),
  };
}

export { grpc };
