// channelkit's public API. Nothing else is public; `channelkit/testing` holds the test communicator.
export {
  type AcceptOptions,
  type Application,
  type Connection,
  HandshakeRejected,
  type Middleware,
  type ResponseHeaders,
  type Runtime,
  type Transport,
} from './application';
export { Consumer } from './consumer';
export { UnknownMessageType, handlerName } from './dispatch';
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
export { InMemoryChannelLayer } from './layers/memory';
export { RedisChannelLayer, type RedisChannelLayerOptions } from './layers/redis/list';
export { RedisPubSubChannelLayer, type RedisPubSubLayerOptions } from './layers/redis/pubsub';
export { RedisShardedPubSubChannelLayer, type RedisShardedPubSubLayerOptions } from './layers/redis/cluster-pubsub';
export { channelLayerFromEnv } from './layers/from-env';
export { type Publisher, type PublisherOptions, createPublisher } from './publisher';
export { type Logger, createLogger } from './logger';
export { type AuthOptions, type UserResolver, authMiddleware } from './middleware/auth';
export { type OriginValidatorOptions, originValidator } from './middleware/origin';
export { NoRoute, type Route, type RouteParamsOf, URLRouter, path, rePath } from './router';
export type { ReadonlyQuery, RouteParamValue, RouteParams, Scope, ScopeUser } from './scope';
export { type HttpHandler, Server, type ServerOptions } from './server';
export { serveFile } from './static';
export { signToken, verifyToken } from './tokens';
export { CloseCode, type ConsumerClass, JsonWebsocketConsumer, WebsocketConsumer } from './websocket';
export { ChannelNameRouter, Worker, type WorkerConsumerClass, type WorkerOptions } from './worker';
