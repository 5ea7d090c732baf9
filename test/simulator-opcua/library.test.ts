/**
 * The OPC UA simulator as a library, through a real node-opcua client: every variable reads
 * back with its built-in type and value over None and over SignAndEncrypt (server certificate
 * trusted explicitly, an untrusting client is refused), user name logins, anonymous refused on
 * request, operation limits advertised and enforced, set/setStatus reaching a subscription,
 * stalled notifications, setMany (one cycle, one source timestamp), given source timestamps
 * (several in one publish response), Types.Variant (any built-in type per write, arrays too)
 * and bad input refused with context.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  AttributeIds,
  ClientMonitoredItem,
  DataType,
  type DataValue,
  OPCUACertificateManager,
  TimestampsToReturn,
  VariableIds,
} from "node-opcua";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALL_VARIABLES,
  type OpcuaSimulator,
  startOpcuaSimulator,
  type TypedValue,
} from "../../simulators/opcua/index.ts";
import { eventually } from "../support/resources.ts";
import { connect, decode, makePki, nodeId, type Pki, readValue } from "./helpers.ts";

const pki: Pki = makePki();
let sim: OpcuaSimulator;
let store: OPCUACertificateManager;
const USERS = { operator: "s3cret" };

beforeAll(async () => {
  sim = await startOpcuaSimulator({ pkiDir: pki.simPki, users: USERS, seed: 3 });
  store = await pki.clientStore(sim.serverCertificateFile);
});

afterAll(async () => {
  await sim?.close();
  await pki.cleanup();
});

async function expectAllVariables(session: Parameters<typeof readValue>[0]): Promise<void> {
  const values = await session.read(
    ALL_VARIABLES.map((spec) => ({
      nodeId: nodeId(sim, spec.name),
      attributeId: AttributeIds.Value,
    })),
  );
  ALL_VARIABLES.forEach((spec, i) => {
    const dv = values[i]!;
    expect(dv.statusCode.name, spec.name).toBe("Good");
    const stored = sim.get(spec.name);
    const typed = spec.dataType === "BaseDataType" ? (stored as TypedValue) : undefined;
    const dataType = typed?.dataType ?? spec.dataType;
    const expected = typed?.value ?? stored;
    expect(DataType[dv.value.dataType], spec.name).toBe(dataType);
    const got = decode(dataType, dv.value.value);
    if (dataType === "Float") expect(got, spec.name).toBe(Math.fround(expected as number));
    else expect(got, spec.name).toEqual(expected);
  });
}

describe("OPC UA simulator: reading", () => {
  it("serves every variable with its type over an unsecured channel", async () => {
    sim.advance(4_000); // one test completed
    const c = await connect(sim, store);
    try {
      await expectAllVariables(c.session);
      expect(sim.get("Types.Int64")).toBe(-9_007_199_254_740_993n);
      expect(sim.get("Types.StatusCode")).toBe("UncertainLastUsableValue");
      expect(sim.get("ResultReady")).toBe(true);
      const refs = await c.session.browse(nodeId(sim, "Measurement1"));
      const names = refs.references?.map((r) => r.browseName.name) ?? [];
      expect(names).toEqual(expect.arrayContaining(["EURange", "EngineeringUnits"]));
      const folder = await c.session.browse(`ns=${sim.namespaceIndex};s=TestStand.Types`);
      expect(folder.references?.map((r) => r.browseName.name).sort()).toContain("Guid");
    } finally {
      await c.close();
    }
  });

  it("serves SignAndEncrypt with Basic256Sha256 to a client that trusts the server certificate", async () => {
    const c = await connect(sim, store, { mode: "SignAndEncrypt", policy: "Basic256Sha256" });
    try {
      expect(c.client.securityMode).toBe(3); // SignAndEncrypt
      await expectAllVariables(c.session);
    } finally {
      await c.close();
    }
  });

  it("is refused by a client that does not trust the server certificate", async () => {
    const root = join(pki.dir, "untrusting");
    mkdirSync(join(root, "own", "certs"), { recursive: true });
    // Reuse the trusting store's key pair so no new certificate has to be created.
    copyFileSync(
      join(pki.dir, "client", "own", "certs", "client_certificate.pem"),
      join(root, "own", "certs", "client_certificate.pem"),
    );
    mkdirSync(join(root, "own", "private"), { recursive: true });
    copyFileSync(
      join(pki.dir, "client", "own", "private", "private_key.pem"),
      join(root, "own", "private", "private_key.pem"),
    );
    const untrusting = new OPCUACertificateManager({
      rootFolder: root,
      automaticallyAcceptUnknownCertificate: false,
      disableFileWatchers: true,
    });
    await untrusting.initialize();
    try {
      await expect(connect(sim, untrusting, { mode: "SignAndEncrypt" })).rejects.toThrow(
        /BadCertificateUntrusted|verification failed/,
      );
      // The unknown server certificate lands in rejected/ for an operator to move to trusted/.
      expect(readdirSync(join(root, "rejected"))).toHaveLength(1);
    } finally {
      await untrusting.dispose();
    }
  });

  it("accepts the right user name and password and refuses a wrong one", async () => {
    const ok = await connect(sim, store, { user: { name: "operator", password: "s3cret" } });
    expect((await readValue(ok.session, nodeId(sim, "BatchId"))).value.value).toBe("B0001");
    await ok.close();
    await expect(
      connect(sim, store, { user: { name: "operator", password: "wrong" } }),
    ).rejects.toThrow(/BadUserAccessDenied|BadIdentityTokenRejected/);
    await expect(
      connect(sim, store, { user: { name: "nobody", password: "s3cret" } }),
    ).rejects.toThrow(/BadUserAccessDenied|BadIdentityTokenRejected/);
  });
});

describe("OPC UA simulator: values reach subscriptions", () => {
  it("delivers set() and setStatus(), holds them while stalled, then delivers the latest", async () => {
    const c = await connect(sim, store);
    const seen: DataValue[] = [];
    const subscription = await c.session.createSubscription2({
      requestedPublishingInterval: 50,
      requestedMaxKeepAliveCount: 10,
      requestedLifetimeCount: 100,
      publishingEnabled: true,
    });
    try {
      const item = await ClientMonitoredItem.create(
        subscription,
        { nodeId: nodeId(sim, "Measurement2"), attributeId: AttributeIds.Value },
        { samplingInterval: 0, discardOldest: true, queueSize: 10 },
        TimestampsToReturn.Both,
      );
      item.on("changed", (dv: DataValue) => seen.push(dv));
      const has = (check: (dv: DataValue) => boolean) => () => seen.some(check);
      sim.set("Measurement2", 999.5);
      await eventually(
        has((dv) => dv.value.value === 999.5),
        5000,
        "set value",
      );
      sim.setStatus("Measurement2", "BadSensorFailure");
      await eventually(
        has((dv) => dv.statusCode.name === "BadSensorFailure"),
        5000,
        "status",
      );

      sim.stallNotifications(true);
      sim.set("Measurement2", 111);
      expect(sim.get("Measurement2")).toBe(111);
      const frozen = await readValue(c.session, nodeId(sim, "Measurement2"));
      expect(frozen.value.value).toBe(999.5);
      expect(frozen.statusCode.name).toBe("BadSensorFailure");
      sim.stallNotifications(false);
      await eventually(
        has((dv) => dv.value.value === 111 && dv.statusCode.name === "Good"),
        5000,
        "resumed",
      );
    } finally {
      await subscription.terminate();
      await c.close();
    }
  });
});

describe("OPC UA simulator: source timestamps and publish responses", () => {
  it("sends values set in one synchronous run, with the source times given, in one publish response", async () => {
    // MinSupportedSampleRate 0: every change is queued (no coalescing window)
    const fast = await startOpcuaSimulator({ pkiDir: pki.simPki, minSupportedSampleRate: 0 });
    const c = await connect(fast, store);
    const subscription = await c.session.createSubscription2({
      requestedPublishingInterval: 200,
      requestedMaxKeepAliveCount: 10,
      requestedLifetimeCount: 100,
      publishingEnabled: true,
    });
    // every DataChangeNotification of each publish response: [node, value, source time][]
    const responses: [string, unknown, number | undefined][][] = [];
    const names = ["Result", "BatchId"];
    subscription.on("received_notifications", (message) => {
      const items = (message.notificationData ?? []).flatMap(
        (n) =>
          (n as { monitoredItems?: { clientHandle: number; value: DataValue }[] }).monitoredItems ??
          [],
      );
      responses.push(
        items.map((item) => [
          names[item.clientHandle - handles[0]!] ?? "?",
          item.value.value.value,
          item.value.sourceTimestamp?.getTime(),
        ]),
      );
    });
    let handles: number[] = [];
    try {
      const group = await subscription.monitorItems(
        names.map((name) => ({ nodeId: nodeId(fast, name), attributeId: AttributeIds.Value })),
        { samplingInterval: 0, queueSize: 10, discardOldest: true },
        TimestampsToReturn.Both,
      );
      handles = group.monitoredItems.map((item) => item.monitoringParameters.clientHandle);
      expect(handles[1]).toBe(handles[0]! + 1);
      await eventually(() => responses.length > 0, 5000, "the first values");
      const t0 = Date.now() - 60_000;
      const at = (ms: number) => ({ sourceTimestamp: new Date(t0 + ms) });
      const mark = responses.length;
      fast.set("Result", 11, at(10));
      fast.set("BatchId", "B0077", at(20));
      fast.set("Result", 12, at(30));
      await eventually(() => responses.length > mark, 5000, "the publish response");
      expect(fast.get("Result")).toBe(12);
      expect(responses.slice(mark)[0]!.sort((a, b) => (a[2] ?? 0) - (b[2] ?? 0))).toEqual([
        ["Result", 11, t0 + 10],
        ["BatchId", "B0077", t0 + 20],
        ["Result", 12, t0 + 30],
      ]);
      expect(() => fast.set("Result", 3, { sourceTimestamp: new Date(Number.NaN) })).toThrow(
        /sourceTimestamp must be a valid Date/,
      );
    } finally {
      await subscription.terminate();
      await c.close();
      await fast.close();
    }
  });
});

describe("OPC UA simulator: Types.Variant", () => {
  it("has DataType BaseDataType and ValueRank Any, and serves each write with its own type", async () => {
    const c = await connect(sim, store);
    try {
      const id = nodeId(sim, "Types.Variant");
      const attrs = await c.session.read([
        { nodeId: id, attributeId: AttributeIds.DataType },
        { nodeId: id, attributeId: AttributeIds.ValueRank },
      ]);
      expect(attrs[0]!.value.value.toString()).toBe("ns=0;i=24");
      expect(attrs[1]!.value.value).toBe(-2);
      const writes: TypedValue[] = [
        { dataType: "Double", value: 58.7 },
        { dataType: "Int32", value: 129 },
        { dataType: "Double", value: [1, 2, 3, 3, 4] },
        { dataType: "Int64", value: [5n, -(2n ** 60n)] },
        { dataType: "String", value: "x" },
      ];
      for (const write of writes) {
        sim.set("Types.Variant", write);
        const dv = await readValue(c.session, id);
        expect(DataType[dv.value.dataType]).toBe(write.dataType);
        const got = Array.isArray(write.value)
          ? Array.from(dv.value.value as ArrayLike<unknown>, (v) => decode(write.dataType, v))
          : decode(write.dataType, dv.value.value);
        expect(got).toEqual(write.value);
        expect(sim.get("Types.Variant")).toEqual(write);
      }
      expect(() => sim.set("Types.Variant", 5)).toThrow(/Types\.Variant .*expected \{ dataType/);
      expect(() => sim.set("Types.Variant", { dataType: "Boolean", value: true })).toThrow(
        /other than Boolean/,
      );
      expect(() => sim.set("Types.Variant", { dataType: "SByte", value: 129 })).toThrow(
        /expected an integer -128\.\.127/,
      );
      expect(() =>
        sim.set("Types.Variant", { dataType: "StatusCode", value: "GoodNonsense" }),
      ).toThrow(/unknown status code/);
    } finally {
      await c.close();
    }
  });
});

describe("OPC UA simulator: DataTypes that are subtypes", () => {
  it("serves Types.Enumeration (ServerState) and Types.Duration with their values' types", async () => {
    const c = await connect(sim, store);
    try {
      const ids = ["Types.Enumeration", "Types.Duration"].map((name) => nodeId(sim, name));
      const types = await c.session.read(
        ids.map((id) => ({ nodeId: id, attributeId: AttributeIds.DataType })),
      );
      expect(types.map((t) => t.value.value.toString())).toEqual(["ns=0;i=852", "ns=0;i=290"]);
      sim.set("Types.Enumeration", 3);
      sim.set("Types.Duration", 250.5);
      const values = await c.session.read(
        ids.map((id) => ({ nodeId: id, attributeId: AttributeIds.Value })),
      );
      expect(values.map((v) => [DataType[v.value.dataType], v.value.value])).toEqual([
        ["Int32", 3],
        ["Double", 250.5],
      ]);
    } finally {
      await c.close();
    }
  });
});

describe("OPC UA simulator: options", () => {
  it("advertises and enforces operation limits, offers only the modes asked for, refuses anonymous", async () => {
    const limited = await startOpcuaSimulator({
      pkiDir: pki.simPki,
      security: ["None", "SignAndEncrypt"],
      policies: ["Basic256Sha256"],
      users: USERS,
      allowAnonymous: false,
      maxNodesPerRead: 4,
      maxMonitoredItemsPerCall: 3,
    });
    try {
      await expect(connect(limited, store)).rejects.toThrow(
        /BadIdentityTokenInvalid|BadIdentityTokenRejected|anonymous/i,
      );
      const c = await connect(limited, store, { user: { name: "operator", password: "s3cret" } });
      try {
        const endpoints = await c.client.getEndpoints();
        expect(
          new Set(endpoints.map((e) => `${e.securityMode}:${e.securityPolicyUri?.split("#")[1]}`)),
        ).toEqual(new Set(["1:None", "3:Basic256Sha256"]));
        const limits = await c.session.read([
          {
            nodeId: `i=${VariableIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead}`,
            attributeId: AttributeIds.Value,
          },
          {
            nodeId: `i=${VariableIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall}`,
            attributeId: AttributeIds.Value,
          },
        ]);
        expect(limits.map((dv) => dv.value.value)).toEqual([4, 3]);
        const names = ["Measurement1", "Measurement2", "Measurement3", "Result", "BatchId"];
        const toRead = (n: number) =>
          names
            .slice(0, n)
            .map((name) => ({ nodeId: nodeId(limited, name), attributeId: AttributeIds.Value }));
        expect(await c.session.read(toRead(4))).toHaveLength(4);
        await expect(c.session.read(toRead(5))).rejects.toThrow(/BadTooManyOperations/);
        const subscription = await c.session.createSubscription2({
          requestedPublishingInterval: 100,
        });
        try {
          const monitor = (n: number) =>
            subscription.monitorItems(
              toRead(n),
              { samplingInterval: 100, queueSize: 1 },
              TimestampsToReturn.Both,
            );
          await expect(monitor(4)).rejects.toThrow(/BadTooManyOperations/);
          await expect(monitor(3)).resolves.toBeDefined();
        } finally {
          await subscription.terminate();
        }
      } finally {
        await c.close();
      }
    } finally {
      await limited.close();
    }
  });

  it("rejects unknown client certificates into server/rejected/ with trustClientCertificates none", async () => {
    const pkiDir = join(pki.dir, "strict-sim");
    const strict = await startOpcuaSimulator({ pkiDir, trustClientCertificates: "none" });
    try {
      // The client trusts this simulator's (new) certificate; only the server side refuses.
      const pem = readFileSync(strict.serverCertificateFile, "utf8");
      await store.trustCertificate(Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));
      await expect(connect(strict, store, { mode: "SignAndEncrypt" })).rejects.toThrow();
      expect(readdirSync(join(pkiDir, "server", "rejected"))).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  it("setMany writes one PLC cycle: one source timestamp, all or nothing", async () => {
    const c = await connect(sim, store);
    try {
      sim.setStatus("Result", "BadSensorFailure");
      sim.setMany({ BatchId: "B0042", Result: 2, ResultReady: true });
      const names = ["BatchId", "Result", "ResultReady"];
      const values = await c.session.read(
        names.map((name) => ({ nodeId: nodeId(sim, name), attributeId: AttributeIds.Value })),
      );
      expect(values.map((v) => v.value.value)).toEqual(["B0042", 2, true]);
      expect(values.map((v) => v.statusCode.name)).toEqual(["Good", "Good", "Good"]);
      const stamps = new Set(values.map((v) => v.sourceTimestamp?.getTime()));
      expect(stamps.size).toBe(1);
      expect(() => sim.setMany({ BatchId: "B0043", Result: 1.5 })).toThrow(/Result is Int32/);
      expect(() => sim.setMany({ BatchId: "B0043", Nope: 1 })).toThrow(/no variable "Nope"/);
      expect(() => sim.setMany({ "Types.StatusCode": "GoodNonsense" })).toThrow(/unknown status/);
      expect(sim.get("BatchId")).toBe("B0042");
    } finally {
      await c.close();
    }
  });

  it("refuses unknown names, wrong value types and unknown status codes with context", () => {
    expect(() => sim.set("Nope", 1)).toThrow(/no variable "Nope"/);
    expect(() => sim.set("Types.Byte", 300)).toThrow(/Types\.Byte is Byte, got 300/);
    expect(() => sim.set("Types.Int64", 1.5)).toThrow(/Types\.Int64 is Int64/);
    expect(() => sim.setStatus("Result", "BadNonsense")).toThrow(
      /unknown status code "BadNonsense"/,
    );
    expect(() => sim.set("Types.StatusCode", "GoodNonsense")).toThrow(/unknown status code/);
    expect(() => sim.advance(-1)).toThrow(/advance\(-1\)/);
    sim.set("Types.Int64", 5);
    expect(sim.get("Types.Int64")).toBe(5n);
  });
});
