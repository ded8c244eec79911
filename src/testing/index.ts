// channelkit/testing: drive consumers in tests with no socket.
export { type CommunicatorOptions, type ConnectResult, WebsocketCommunicator } from './communicator';
