"""The GraphQL schema: each app contributes its queries and mutations."""

import graphene

import analytics.graphql
import events.graphql
import pipeline.graphql
import subscriptions.graphql
import webhooks.graphql


class Query(
    events.graphql.Query,
    subscriptions.graphql.Query,
    webhooks.graphql.Query,
    analytics.graphql.Query,
    pipeline.graphql.Query,
    graphene.ObjectType,
):
    pass


class Mutation(
    events.graphql.Mutation,
    subscriptions.graphql.Mutation,
    webhooks.graphql.Mutation,
    graphene.ObjectType,
):
    pass


schema = graphene.Schema(query=Query, mutation=Mutation, subscription=analytics.graphql.Streams)
