// channelkit's public API. Nothing else is public; `channelkit/testing` holds the test communicator.
export {
  type AcceptOptions,
  type Application,
  CloseCode,
  type Connection,
  HandshakeRejected,
  type Middleware,
  type ResponseHeaders,
  type Runtime,
  type Transport,
} from './application';
export { Consumer } from './consumer/consumer';
export { UnknownMessageType, handlerName } from './consumer/dispatch';
export {
  type ChannelLayer,
  ChannelFull,
  ChannelLayerError,
  InvalidChannelName,
  InvalidMessage,
  LayerClosed,
  type LayerHealth,
  type LayerLogger,
  type LayerMessage,
  type LayerOptions,
  LayerUnavailable,
  type MessageListener,
} from './layers/layer';
export {
  HistoryNotKept,
  type HistoryPolicy,
  HistoryUnsupported,
  type JoinFrom,
  type JoinResult,
  type StreamPosition,
} from './layers/history';
export { InMemoryChannelLayer } from './layers/memory';
export type { LayerStats, LatencyHistogram, LinkStates } from './layers/stats';
export { type MetricsOptions } from './metrics/endpoint';
export { aggregateMetrics } from './metrics/aggregate';
export type { MetricsJson } from './metrics/server-metrics';
export { InvalidPresenceMember, type PresenceDiff, type PresenceMember, type PresenceOptions, PresenceUnsupported } from './layers/presence';
export { RedisChannelLayer, type RedisChannelLayerOptions } from './layers/redis/list';
export { RedisPubSubChannelLayer, type RedisPubSubLayerOptions } from './layers/redis/pubsub';
export { RedisShardedPubSubChannelLayer, type RedisShardedPubSubLayerOptions } from './layers/redis/cluster-pubsub';
export type { SentinelOptions } from './layers/redis/sentinel';
export { channelLayerFromEnv } from './layers/from-env';
export { Fernet, InvalidToken, Sealer } from './layers/fernet';
export { type Publisher, type PublisherOptions, createPublisher } from './publisher';
export { type Logger, createLogger } from './logger';
export { type AuthOptions, type UserResolver, authMiddleware } from './routing/middleware/auth';
export { type OriginValidatorOptions, originValidator } from './routing/middleware/origin';
export { NoRoute, type Route, type RouteParamsOf, URLRouter, path, rePath } from './routing/router';
export type { ReadonlyQuery, RouteParamValue, RouteParams, Scope, ScopeUser } from './application';
export type { HttpHandler, ServerOptions } from './server/options';
export type { PerMessageDeflateOptions } from './server/permessage-deflate';
export { Server } from './server/server';
export type { ServerStats } from './server/stats';
export { serveFile } from './server/static';
export { CLIENT_SCRIPT_PATH, serveClientScript } from './server/client-script';
export { signToken, verifyToken } from './routing/middleware/tokens';
export { type ConsumerClass, JsonWebsocketConsumer, WebsocketConsumer } from './consumer/websocket';
export { ChannelNameRouter, Worker, type WorkerConsumerClass, type WorkerOptions } from './consumer/worker';
